"""Courses and workshops: who takes which course, staging its materials into each student's
folder (as the student), the per-user staging reports, and what instructors see.

- ``membership``: pure functions the spawn form uses (which courses and profiles a user sees).
- ``sources``: the hub's read-only copy of each course's materials (git fetch or local folder).
- ``plan``: the three-way decision per file (upstream, last staged, the student's copy).
- ``student``: ``hpchub-user stage-course``, which runs as the student and writes the files.
- ``stager``: the hub side: the pre-spawn hook, sudo to the helper, the report store.
"""
