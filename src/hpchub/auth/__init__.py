"""Authenticators for hpchub: PAM behind an optional gate at Apache, or Apache alone."""
