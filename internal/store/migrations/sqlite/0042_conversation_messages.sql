-- Conversation message order (issue 31): each message of a conversation
-- gets the next number of its conversation, taken in the transaction that
-- stores it (the counter row's lock orders concurrent writers), so that a
-- live stream's event ids are the messages' order and a reconnect
-- (Last-Event-ID) is told exactly what it missed.
CREATE TABLE conversation_seq (
    project_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    last_seq BIGINT NOT NULL,
    PRIMARY KEY (project_id, conversation_id)
);
CREATE TABLE conversation_messages (
    project_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    PRIMARY KEY (project_id, conversation_id, seq)
);
