"""Offline evaluation: simulated worlds and policies, beyond-accuracy metrics, OPE."""
