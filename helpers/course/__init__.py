"""The course machinery: the notebook runner (``python -m helpers.course.run``), the notebook conventions,
the learner build (``python -m helpers.course.student``), the exercise checks, JupyterLab (``lab``), the
offline site (``site``), the instructor guide (``guide``, read through ``outline``) and the offline
wheelhouse (``wheelhouse``).
"""
