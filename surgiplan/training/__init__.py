"""Training mode for residents (Qt-free): exercises (case + task + hidden reference + rubric),
a resident's attempt, and its score with feedback tied to LPS locations.

See ``exercise`` (the file format, ``load_exercise``, ``list_exercises``), ``attempt`` (what a
resident submits; placements <-> simulator inputs), ``scoring`` (``score_attempt`` ->
``TrainingScore``), ``cases`` (find or generate an exercise's case) and ``shipped`` (the
exercises in ``surgiplan/training/exercises/``, built from the phantoms' demo plans).
"""

from surgiplan.training.attempt import Attempt, read_attempt, simulation_input
from surgiplan.training.exercise import Exercise, find_exercise, list_exercises, load_exercise
from surgiplan.training.scoring import Feedback, TrainingScore, score_attempt

__all__ = ["Attempt", "Exercise", "Feedback", "TrainingScore", "find_exercise",
           "list_exercises", "load_exercise", "read_attempt", "score_attempt",
           "simulation_input"]
