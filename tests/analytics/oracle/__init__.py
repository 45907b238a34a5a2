"""Independent reference evaluator of the indicator catalogue (see ``evaluator.py``)."""
