# The smallest app equivalent to wsdeploy's: an `auth` route whose handler replies and a `$disconnect` handler.
# Architect always adds `connect` and `default` handlers to @ws; they answer 200.
@app
benchapp

@ws
auth
