"""The site file: typed models, loading with clear errors, and mapping onto JupyterHub traits."""

from .loader import SiteConfigError, load_site
from .models import SiteConfig

__all__ = ["SiteConfig", "SiteConfigError", "load_site"]
