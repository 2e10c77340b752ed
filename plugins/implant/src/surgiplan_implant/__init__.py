"""SurgiPlan implant placement simulator plug-in (entry point ``surgiplan.simulators: implant``).

Pedicle screws from the parametric library (package data ``surgiplan_implant/data``) or any
STL/OBJ/PLY implant, placed by a 4x4 pose in LPS mm; cortical breach per direction and
Gertzbein-Robbins grade, distances to critical structures, HU-band length shares, implant
collisions, live re-scoring and Monte Carlo 95 % intervals; auto-suggest of a screw for a
chosen vertebra.
"""

__version__ = "1.0.0"
