"""Reusable Streamlit UI of the dashboard: cached state and widgets (ecg_core holds the logic)."""
