"""Idle culling with a per-server policy: big servers go first, small ones may stay."""
