// Follows a zambda's log as it is written: "Follow new lines" asks the
// console every two seconds for the lines after the last one shown (the
// API's log search, as the search box does) and appends them as text.
// Without this script the search box shows the latest lines on reload.
const button = document.getElementById('log-follow');
const status = document.getElementById('log-follow-status');
if (button && status) {
  const url = button.dataset.url;
  let after = Number(button.dataset.after) || 0;
  let timer = null;
  const body = () => {
    let el = document.getElementById('log-lines');
    if (!el || el.tagName !== 'TABLE') {
      const table = document.createElement('table');
      table.id = 'log-lines';
      table.className = 'list';
      table.innerHTML = '<thead><tr><th scope="col">Time (UTC)</th><th scope="col">Line</th></tr></thead><tbody></tbody>';
      if (el) el.replaceWith(table); else status.after(table);
      el = table;
    }
    return el.tBodies[0];
  };
  const poll = async () => {
    let out;
    try {
      const q = new URLSearchParams({ after: String(after), logs: button.dataset.filter || '' });
      const res = await fetch(url + '?' + q, { credentials: 'same-origin' });
      if (!res.ok) {
        status.textContent = 'Following stopped: the console answered ' + res.status + '.';
        stop();
        return;
      }
      out = await res.json();
    } catch {
      return; // offline for a moment: the next poll tries again
    }
    if (out.lines.length) {
      const tbody = body();
      for (const l of out.lines) {
        const tr = tbody.insertRow();
        const t = tr.insertCell();
        t.className = 'scope';
        t.textContent = l.time;
        const pre = document.createElement('pre');
        pre.className = 'code';
        pre.textContent = l.message;
        tr.insertCell().append(pre);
      }
      status.textContent = out.lines.length + ' new line' + (out.lines.length === 1 ? '' : 's') + '.';
    }
    after = Math.max(after, out.last);
  };
  const stop = () => {
    clearInterval(timer);
    timer = null;
    button.textContent = 'Follow new lines';
    button.setAttribute('aria-pressed', 'false');
  };
  button.hidden = false;
  button.addEventListener('click', () => {
    if (timer) {
      stop();
      status.textContent = 'Stopped following.';
      return;
    }
    button.textContent = 'Stop following';
    button.setAttribute('aria-pressed', 'true');
    status.textContent = 'Following new lines.';
    poll();
    timer = setInterval(poll, 2000);
  });
}
