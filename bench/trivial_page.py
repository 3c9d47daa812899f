"""The yardstick of bench_review.py: a trivial Streamlit page (a title and one line), served the same way."""

import streamlit as st

st.title("Trivial page")
st.write("Nothing here but text.")
