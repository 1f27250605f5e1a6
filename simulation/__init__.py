"""A synthetic city with known true risk: subjects, records, inspectors, truth (see docs/data-contract.md).

    from simulation import CityConfig, SimulationConfig, generate
    generate(SimulationConfig(n_subjects=2000, seed=1), "var/city")
"""

from simulation.city import CityConfig
from simulation.config import SCENARIOS, SimulationConfig
from simulation.generate import generate

__all__ = ["SCENARIOS", "CityConfig", "SimulationConfig", "generate"]
