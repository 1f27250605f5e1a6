"""Monitoring: drift of inputs, scores and grades; performance as outcomes arrive; data health; alerts.

Pure functions over DataFrames returning dataclasses / pydantic models; `monitoring.run.monitor`
puts them together and `MonitoringResult.to_json()` is what the service stores. The PSI itself
is `stability.psi.decile_psi`, shared with training.
"""

from monitoring.alerts import Alert, AlertConfig, AlertConfigError, load_alert_config
from monitoring.run import MonitoringFrames, MonitoringResult, monitor

__all__ = [
    "Alert",
    "AlertConfig",
    "AlertConfigError",
    "MonitoringFrames",
    "MonitoringResult",
    "load_alert_config",
    "monitor",
]
