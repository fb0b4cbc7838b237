"""The worker: consumers, pools, time limits, heartbeats and recovery."""
