"""The prediction log and ground-truth feedback: live model quality per model version.

- :mod:`.records`: the JSON Lines record format, segment file names, reading segments back;
- :mod:`.segments`: :class:`SegmentWriter`, one worker's segment files (rotation by size and
  age, the disk bound shared by every worker);
- :mod:`.idfiles`: the id file next to each segment, where feedback finds a logged
  prediction by request id;
- :mod:`.index`: :class:`FeedbackIndex`, the SQLite (WAL) index of feedback every worker
  shares, where predictions and feedback are joined by request id;
- :mod:`.quality`: live accuracy / macro F1 / MAE / RMSE and the verdict against training;
- :mod:`.service`: :class:`PredictionLog`, the data-plane step and its background writer;
- :mod:`.prometheus`: the ``model_live_*`` series;
- :mod:`.export`: ``python -m src.serve.predlog.export``, log + feedback -> a labelled CSV.

See docs/feedback.md.
"""
