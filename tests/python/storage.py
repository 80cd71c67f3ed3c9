"""Create buckets and containers on the loopback test servers (Floe never creates them).

    python storage.py s3-bucket ENDPOINT BUCKET
    python storage.py s3-user ENDPOINT BUCKET   (on moto checking credentials: an IAM user
                                                 allowed everything, its key, the bucket;
                                                 prints "KEY_ID SECRET")
    python storage.py az-container BLOB_URL CONTAINER
    python storage.py az-list BLOB_URL CONTAINER   (prints every blob name)

Azure's account and key are Azurite's well-known ones unless AZ_ACCOUNT / AZ_KEY say.
"""

import os
import sys

AZURITE_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
               "KBHBeksoGMGw==")


def connection(endpoint):
    account = os.environ.get("AZ_ACCOUNT", "devstoreaccount1")
    key = os.environ.get("AZ_KEY", AZURITE_KEY)
    return (f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};"
            f"BlobEndpoint={endpoint}/{account};")


def s3_client():
    """A boto3 client for the test server the environment names (AWS_*)."""
    import boto3

    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                        region_name=os.environ.get("AWS_REGION", "us-east-1"),
                        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"])


def az_container(container):
    """A client for a container on the Azurite the environment names."""
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(
        connection(os.environ["AZURITE_BLOB_STORAGE_URL"])).get_container_client(container)


def main():
    kind, endpoint, name = sys.argv[1:4]
    if kind == "s3-bucket":
        import boto3

        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket=name)
    elif kind == "s3-user":
        import json

        import boto3

        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="setup", aws_secret_access_key="setup")
        iam.create_user(UserName="lab")
        policy = {"Version": "2012-10-17",
                  "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="lab", PolicyName="all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="lab")["AccessKey"]
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id=key["AccessKeyId"],
                     aws_secret_access_key=key["SecretAccessKey"]).create_bucket(Bucket=name)
        print(key["AccessKeyId"], key["SecretAccessKey"])
    elif kind == "az-container":
        from azure.storage.blob import BlobServiceClient

        BlobServiceClient.from_connection_string(connection(endpoint)).create_container(name)
    elif kind == "az-list":
        from azure.storage.blob import BlobServiceClient

        client = BlobServiceClient.from_connection_string(connection(endpoint)).get_container_client(name)
        for b in client.list_blobs():
            print(b.name)
    else:
        raise SystemExit(f"unknown: {kind}")


if __name__ == "__main__":
    main()
