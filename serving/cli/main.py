"""Entry point of the `tiers` CLI: imports every stage so its commands register on `app`.

Heavy libraries are imported inside the commands, so `tiers --help` stays fast.
"""

from serving.cli import (
    admin,  # noqa: F401  (registers `tiers db …`, `tiers querylog …`, `tiers users …`)
    credit_report,  # noqa: F401  (registers `tiers credit-report issue|verify`)
    demo,  # noqa: F401  (registers `tiers demo`)
    fit,  # noqa: F401  (registers `tiers fit`)
    ingest,  # noqa: F401  (registers `tiers ingest`, `tiers gate …`)
    monitor,  # noqa: F401  (registers `tiers monitor`)
    plan,  # noqa: F401  (registers `tiers plan …`)
    profile,  # noqa: F401  (registers `tiers profile`)
    serve,  # noqa: F401  (registers `tiers serve`)
    simulate,  # noqa: F401  (registers `tiers simulate`)
    train,  # noqa: F401  (registers `tiers train`, `tiers promote`, `tiers report`, `tiers grade`)
)
from serving.cli.app import app

__all__ = ["app"]

if __name__ == "__main__":
    app()
