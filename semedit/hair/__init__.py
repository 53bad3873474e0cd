"""Hairstyle transfer (Šubrtová, Čech, Franc, FG 2021): the FG'21 network and an optimisation method."""
from .transfer import (HairOptimisation, HairResult, IdentitySteps, alpha_blend, identity_steps, interpolate,
                       transfer_by_optimisation, transfer_with_model)

__all__ = ["HairOptimisation", "HairResult", "IdentitySteps", "alpha_blend", "identity_steps", "interpolate",
           "transfer_by_optimisation", "transfer_with_model"]
