//! Atomic writes of a complete file set (kubelet AtomicWriter style).
//! Knows nothing of AWS or JMESPath.
