"""Pure-numpy clustering of users: unit vectors, k-means, hard assignment, quality metrics."""

from clustering.assign import assign_hard
from clustering.kmeans import KMeans
from clustering.metrics import adjusted_rand_index, cluster_sizes
from clustering.vectors import normalize_rows, user_vector

__all__ = [
    "KMeans",
    "adjusted_rand_index",
    "assign_hard",
    "cluster_sizes",
    "normalize_rows",
    "user_vector",
]
