"""Models with a leading trial axis on every weight; registry.py names them for configs."""
