"""The Docker engine, the sandboxed container untrusted code runs in (sandbox), and the images
xbuild makes: builder and runtime images (images), base images from the Debian mirror (rootfs),
images moved through a store (image_store), image archives loaded safely (image_archive), Dockerfile
projects (dockerimage) and qemu-user-static through binfmt_misc (binfmt)."""
