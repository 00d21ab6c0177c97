"""Pure-numpy bandit maths: Beta posteriors per arm, Thompson sampling, seen-decay multipliers."""

from bandits.penalty import decayed_counts, seen_decay
from bandits.posterior import beta_interval, beta_mean, beta_params
from bandits.propensity import inclusion_probabilities
from bandits.thompson import rank, sample_scores, top_k

__all__ = [
    "beta_interval",
    "beta_mean",
    "beta_params",
    "decayed_counts",
    "inclusion_probabilities",
    "rank",
    "sample_scores",
    "seen_decay",
    "top_k",
]
