"""Population stability: the one PSI of the project, shared by training (the validation report's
stability table, the promotion gate's grade-share shift) and monitoring (drift alerts), so the
same two samples give the same figure wherever it is shown.

A leaf package: it imports nothing of ours, and every package may import it.
"""

from stability.psi import PSI_EPSILON, PsiBin, PsiResult, binned_counts, decile_psi, is_categorical

__all__ = ["PSI_EPSILON", "PsiBin", "PsiResult", "binned_counts", "decile_psi", "is_categorical"]
