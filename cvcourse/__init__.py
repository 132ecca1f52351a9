"""cvcourse: the helper library of a course in deep learning for computer vision.

Students import it from the course notebooks; it never imports torch (the grader does).

Subpackages:
    cvcourse.kernels    numba conv/pool kernels, forward and backward, torch semantics
    cvcourse.gradcheck  finite-difference gradient checks and their report
    cvcourse.data       bundled sample data
    cvcourse.filters    the classic 3x3 image filters of the lectures
"""

__version__ = "0.1.0"
