package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// AddRateCounts adds each key's count to its row of the window starting
// at window and returns every key's total after the addition (all
// replicas' counts). One transaction for the batch; keys are locked in
// sorted order, so two replicas adding the same keys cannot deadlock.
// A count of 0 reads the total without writing (an upsert of 0 would
// still write a row version on PostgreSQL).
func (s *Store) AddRateCounts(ctx context.Context, window time.Time, counts map[string]int64) (map[string]int64, error) {
	var adds, reads []string
	for k, n := range counts {
		if n == 0 {
			reads = append(reads, k)
		} else {
			adds = append(adds, k)
		}
	}
	slices.Sort(adds)
	out := make(map[string]int64, len(counts))
	err := s.WithTx(ctx, func(tx *Tx) error {
		for _, k := range adds {
			var total int64
			err := tx.queryRow(ctx, `INSERT INTO rate_counts (key, window_start, count) VALUES (?, ?, ?)
				ON CONFLICT (key, window_start) DO UPDATE SET count = rate_counts.count + excluded.count
				RETURNING count`, k, ms(window), counts[k]).Scan(&total)
			if err != nil {
				return s.mapErr(err)
			}
			out[k] = total
		}
		// Reads go by the hundred: a replica may have seen many keys.
		for chunk := range slices.Chunk(reads, 100) {
			args := []any{ms(window)}
			for _, k := range chunk {
				args = append(args, k)
				out[k] = 0
			}
			rows, err := tx.query(ctx, `SELECT key, count FROM rate_counts WHERE window_start = ? AND key IN (?`+
				strings.Repeat(", ?", len(chunk)-1)+`)`, args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var k string
				var n int64
				if err := rows.Scan(&k, &n); err != nil {
					rows.Close()
					return err
				}
				out[k] = n
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if err := rows.Err(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("add rate counts: %w", err)
	}
	return out, nil
}

// PruneRateCounts deletes the rows of windows that started before before.
func (s *Store) PruneRateCounts(ctx context.Context, before time.Time) error {
	if _, err := s.exec(ctx, `DELETE FROM rate_counts WHERE window_start < ?`, ms(before)); err != nil {
		return fmt.Errorf("prune rate counts: %w", err)
	}
	return nil
}
