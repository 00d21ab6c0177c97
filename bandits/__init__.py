"""Pure-numpy bandit maths: Beta posteriors, Thompson sampling, seen decay, fixed or learned."""

from bandits.affinity import affinity_params, fit_affinity_slope, personal_tilt
from bandits.conditional_propensity import conditional_inclusion
from bandits.discount import Discount
from bandits.fatigue import (
    DecayPosterior,
    FatigueBuckets,
    FatigueLearner,
    correction_base,
    decay_posterior,
    decay_prior,
    fit_decay_strength,
)
from bandits.mixing import mix_posteriors
from bandits.penalty import decayed_counts, seen_decay
from bandits.posterior import beta_interval, beta_mean, beta_params
from bandits.prior import (
    CLUSTER_CHOICES,
    MIN_HISTORY_PER_ARM,
    MIN_USERS_PER_CLUSTER,
    Prior,
    catalog_prior,
    clusters_for_history,
    conversion_rate,
    effective_impressions,
    empirical_params,
    fit_prior_strength,
    shrunk_priors,
    unfitted_strength,
)
from bandits.propensity import inclusion_probabilities, inclusion_shares
from bandits.quotas import fill_quotas, rank_with_quotas
from bandits.thompson import rank, sample_scores, top_k

__all__ = [
    "CLUSTER_CHOICES",
    "MIN_HISTORY_PER_ARM",
    "MIN_USERS_PER_CLUSTER",
    "DecayPosterior",
    "Discount",
    "FatigueBuckets",
    "FatigueLearner",
    "Prior",
    "affinity_params",
    "beta_interval",
    "beta_mean",
    "beta_params",
    "catalog_prior",
    "clusters_for_history",
    "conditional_inclusion",
    "conversion_rate",
    "correction_base",
    "decay_posterior",
    "decay_prior",
    "decayed_counts",
    "effective_impressions",
    "empirical_params",
    "fill_quotas",
    "fit_affinity_slope",
    "fit_decay_strength",
    "fit_prior_strength",
    "inclusion_probabilities",
    "inclusion_shares",
    "mix_posteriors",
    "personal_tilt",
    "rank",
    "rank_with_quotas",
    "sample_scores",
    "seen_decay",
    "shrunk_priors",
    "top_k",
    "unfitted_strength",
]
