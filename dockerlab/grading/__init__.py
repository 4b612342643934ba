"""The autograder: hidden trees per student, student code in a sandboxed worker, Gradescope and
GitHub Classroom output.

* :mod:`.grader` — ``grade_class``: a class folder in, ``grades.csv`` and per-student feedback out;
* :mod:`.worker` — ``--impl sandbox:<dir>``: the tests' side of the pipe to student code;
* :mod:`.sandbox_main` — the worker itself (stdlib only), :mod:`.sandbox` — how it is isolated;
* :mod:`.recorder`, :mod:`.report` — outcomes from the trusted pytest run, scores and feedback;
* :mod:`.submissions`, :mod:`.platforms`, :mod:`.commands`, :mod:`.bench`.
"""

__all__: list[str] = []
