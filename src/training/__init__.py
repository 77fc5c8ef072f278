"""Training: a Metaflow workflow that turns a YAML config into a published model artifact.

Trainers (``src.training.trainers``) are plain Python + scikit-learn; only
``training_workflow.py``, ``retraining.py``, ``publish_run.py`` and the offline deployment
checks (``deploy/``) import Metaflow. Nothing here imports
``src.serve``: the artifact on disk (docs/artifact.md) is the only thing the two share.
"""
