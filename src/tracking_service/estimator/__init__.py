"""The delivery-promise estimator: pure functions over rules, calendars and lane history."""
