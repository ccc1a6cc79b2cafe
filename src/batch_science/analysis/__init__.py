"""Analysis of trial tables: steps to result, scaling fits, figures. Never imports TensorFlow."""
