"""Pure-numpy clustering: unit vectors, k-means, hard/soft assignment, similar items, metrics."""

from clustering.assign import assign_hard, assign_soft
from clustering.kmeans import KMeans
from clustering.metrics import adjusted_rand_index, cluster_sizes
from clustering.similar import cluster_affinity, most_similar
from clustering.vectors import normalize_rows, user_vector

__all__ = [
    "KMeans",
    "adjusted_rand_index",
    "assign_hard",
    "assign_soft",
    "cluster_affinity",
    "cluster_sizes",
    "most_similar",
    "normalize_rows",
    "user_vector",
]
