#pragma once
// Linux APIs that `import Glibc` does not expose to Swift (see PLATFORM.md, "epoll from Swift").
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/file.h>
#include <signal.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
extern int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);
