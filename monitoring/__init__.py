"""Monitoring: drift of inputs, scores and grades; performance as outcomes arrive; data health; alerts.

Pure functions over DataFrames returning dataclasses / pydantic models; `monitoring.run.monitor`
puts them together and `MonitoringResult.to_json()` is what the service stores.
"""

from monitoring.alerts import Alert, AlertConfig, AlertConfigError, load_alert_config
from monitoring.psi import PsiResult, decile_psi
from monitoring.run import MonitoringFrames, MonitoringResult, monitor

__all__ = [
    "Alert",
    "AlertConfig",
    "AlertConfigError",
    "MonitoringFrames",
    "MonitoringResult",
    "PsiResult",
    "decile_psi",
    "load_alert_config",
    "monitor",
]
