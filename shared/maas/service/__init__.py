"""What runs on Lambda: the HTTP and queue functions' apps (`http`, `queue`), the set-up they
share (`runtime`: settings, logging, metrics, tracing, warm-up), the model service that loads
classifiers and follows aliases (`models`), the request and message shapes (`schemas`) and the
queue's results sink (`sink`). `maas serve` runs the same apps on a laptop.

Nothing is imported here: a function imports only the modules it uses.
"""
