import sys

if sys.argv[1:] == ["train"]:  # SageMaker starts the training image as `IMAGE train`
    from maas.training.sagemaker import main
else:
    from maas.training.cli import main

raise SystemExit(main())
