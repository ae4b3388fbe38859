package namespace

var (
	_ Backend = (*RedisBackend)(nil)
	_ Backend = (*FileBackend)(nil)
	_ Swapper = (*RedisBackend)(nil)
)
