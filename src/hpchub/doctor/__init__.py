"""`hpchub doctor`: what is wrong with a live deployment, or with one user's account."""
