"""ecg_core: MIT-BIH beats -> 2-D images -> Keras CNNs -> probabilities and Grad-CAM.

The library behind the ECG arrhythmia dashboard. It never imports Streamlit.
"""

__version__ = "0.1.0"
