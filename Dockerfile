# One image for the app, the queue workers and the Chroma server (compose.yaml).
FROM python:3.11-slim
WORKDIR /studio
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
