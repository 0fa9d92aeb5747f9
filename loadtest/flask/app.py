"""The original picshelf, as a baseline for `make bench`: a Flask app doing
what the Flask service did before the Rust rewrite, and nothing more.

- POST /main/upload: every part of `request.files`, each stored under a
  fresh uuid name (`put_object` of the whole file, or `save` on disk);
  answers {"files": [{"id": ...}]} with 201.
- GET /main/download/<id>: the bytes, streamed (S3: the object's body in
  64 KiB chunks; disk: `send_file`, which gunicorn serves with sendfile).

No type checks, no metadata stripping, no hashing: a floor, not a peer in
features. Settings (environment): FLASK_BACKEND (s3 | disk),
FLASK_DATA_DIR (disk), FLASK_S3_ENDPOINT, FLASK_S3_BUCKET,
FLASK_S3_KEY_ID, FLASK_S3_SECRET, FLASK_S3_PREFIX (s3).
Run by scripts/bench with gunicorn (2 workers x 8 threads).
"""

import os
import uuid

from flask import Flask, Response, abort, jsonify, request, send_file

app = Flask(__name__)
BACKEND = os.environ.get("FLASK_BACKEND", "disk")
CHUNK = 64 * 1024

if BACKEND == "s3":
    import boto3
    import botocore.config
    import botocore.exceptions

    s3 = boto3.client(
        "s3",
        endpoint_url=os.environ["FLASK_S3_ENDPOINT"],
        region_name=os.environ.get("FLASK_S3_REGION", "garage"),
        aws_access_key_id=os.environ["FLASK_S3_KEY_ID"],
        aws_secret_access_key=os.environ["FLASK_S3_SECRET"],
        config=botocore.config.Config(
            s3={"addressing_style": "path"},
            max_pool_connections=16,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
    BUCKET = os.environ["FLASK_S3_BUCKET"]
    PREFIX = os.environ.get("FLASK_S3_PREFIX", "flask/")
else:
    DATA_DIR = os.environ.get("FLASK_DATA_DIR", "data/flask")
    os.makedirs(DATA_DIR, exist_ok=True)


def valid_id(image_id):
    try:
        return uuid.UUID(hex=image_id).hex == image_id
    except ValueError:
        return False


@app.post("/main/upload")
def upload():
    files = request.files.getlist("file")
    if not files:
        abort(400)
    stored = []
    for f in files:
        name = uuid.uuid4().hex
        if BACKEND == "s3":
            s3.put_object(Bucket=BUCKET, Key=PREFIX + name, Body=f.stream, ContentType=f.mimetype)
        else:
            f.save(os.path.join(DATA_DIR, name))
        stored.append({"id": name})
    return jsonify(files=stored), 201


@app.get("/main/download/<image_id>")
def download(image_id):
    if not valid_id(image_id):
        abort(404)
    if BACKEND == "s3":
        try:
            obj = s3.get_object(Bucket=BUCKET, Key=PREFIX + image_id)
        except botocore.exceptions.ClientError:
            abort(404)
        body = obj["Body"]
        return Response(
            body.iter_chunks(CHUNK),
            mimetype=obj.get("ContentType", "application/octet-stream"),
            headers={"Content-Length": str(obj["ContentLength"])},
        )
    path = os.path.join(DATA_DIR, image_id)
    if not os.path.exists(path):
        abort(404)
    return send_file(path, mimetype="image/png")
