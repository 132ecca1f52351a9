"""grader: the TA side of the course.

It holds the torch references that every graded function is compared with
(``grader.reference``); later parts add the nbgrader glue, the sandbox, the CLI and the
reports. ``grader`` may import ``cvcourse``; ``cvcourse`` never imports ``grader``.
"""
