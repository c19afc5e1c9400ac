"""One module per framework (``pytorch``, ``tensorflow``, ``mxnet``, ``theano``, ``pytensor``,
``jax``, ``keras``, ``lasagne``): what a chapter needs beyond the framework itself (threads, device,
synchronisation, memory counters). ``compat`` holds the shims that let the retired frameworks
import today; ``worker`` runs a chapter's program in another environment. Each module is
imported only by the chapter that needs it."""
