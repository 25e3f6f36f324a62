package store

import (
	"context"
	"fmt"
)

// BumpPolicyEpoch records that the project's access policies changed.
func (s *Store) BumpPolicyEpoch(ctx context.Context, projectID string) error {
	_, err := s.exec(ctx, `INSERT INTO policy_epochs (project_id, epoch) VALUES (?, 1) ON CONFLICT (project_id) DO UPDATE SET epoch = policy_epochs.epoch + 1`, projectID)
	if err != nil {
		return fmt.Errorf("bump policy epoch: %w", err)
	}
	return nil
}

// PolicyEpochs returns every project's policy epoch.
func (s *Store) PolicyEpochs(ctx context.Context) (map[string]int64, error) {
	rows, err := s.query(ctx, `SELECT project_id, epoch FROM policy_epochs`)
	if err != nil {
		return nil, fmt.Errorf("policy epochs: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var e int64
		if err := rows.Scan(&id, &e); err != nil {
			return nil, fmt.Errorf("policy epochs: %w", err)
		}
		out[id] = e
	}
	return out, rows.Err()
}
