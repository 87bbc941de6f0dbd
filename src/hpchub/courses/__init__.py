"""Courses and workshops: staging a course's materials into each student's folder (as the
student), the per-user staging reports, and what instructors and students see.

The hub plugs them in through one hook, ``hubconfig.courses_piece``; the CLI's `course` command
and the helper `hpchub-user stage-course` (``student.main``) are the other entry points.

- hub side: ``cache`` (the hub's copy: ``folder`` read by descriptors, ``git`` fetched),
  ``stager`` (the pre-spawn hook), ``helper`` (running the helper over ``protocol``), ``store``.
- student side: ``student`` (the helper), ``apply`` (each file decided by ``plan``, received).
- ``report``: the typed outcome both sides share; ``status`` and ``web`` show it.
"""
