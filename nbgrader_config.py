"""nbgrader's configuration, taken from course_config.py (so `nbgrader ...` commands agree with the kit).

The kit's own `python -m autograder release vae` is the way to release: it also strips the
solutions out of the .py files, which nbgrader only copies (here: ignores).
"""
from course_config import configure_nbgrader

configure_nbgrader(get_config())  # noqa: F821 (get_config is provided by nbgrader)
