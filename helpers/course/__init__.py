"""The course machinery: the notebook runner (``python -m helpers.course.run``), the notebook conventions,
the learner build (``python -m helpers.course.student``) and the exercise checks.
"""
