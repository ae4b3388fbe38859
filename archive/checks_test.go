package archive

var (
	_ ObjectStore = (*DirStore)(nil)
	_ ObjectStore = (*S3Store)(nil)
)
