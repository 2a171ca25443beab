"""invsolve: reconstruct images from indirect, incomplete or corrupted measurements
with diffusion models as priors.

>>> import invsolve
>>> from invsolve.operators import Mask, random_pixel_mask
>>> from invsolve.priors import GaussianPrior
>>> prior = GaussianPrior.squared_exponential((1, 16, 16), length_scale=3.0)
>>> A = Mask(random_pixel_mask((16, 16), missing_fraction=0.5, seed=0))
>>> y = A(prior.sample_exact(1, seed=1))
>>> result = invsolve.reconstruct(y, A, prior, sampler="red-diff", progress=False)
"""

from invsolve.baselines import cg_sense, nlm_bmode, tv_reconstruct
from invsolve.oracle import gaussian_posterior
from invsolve.presets import available_presets
from invsolve.reconstruct import Reconstruction, reconstruct
from invsolve.samplers import Problem, Sampler, SamplerResult, available_samplers, get_sampler, register_sampler
from invsolve.dehazing import Dehazed, dehaze, dehaze_grey_levels

__version__ = "0.1.0"

__all__ = [
    "Reconstruction",
    "reconstruct",
    "gaussian_posterior",
    "cg_sense",
    "tv_reconstruct",
    "nlm_bmode",
    "dehaze",
    "dehaze_grey_levels",
    "Dehazed",
    "Sampler",
    "SamplerResult",
    "Problem",
    "available_samplers",
    "available_presets",
    "get_sampler",
    "register_sampler",
    "__version__",
]
