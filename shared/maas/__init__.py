"""maas: text-classification models as a service.

The package is shared by the training job, the CLI and the Lambda functions (it is the Lambda
layer). Serving modules never import TensorFlow; only `maas.training` does.
"""

__version__ = "0.1.0"
