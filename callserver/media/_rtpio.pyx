# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Batched RTP datagram I/O, compiled (Linux): the system calls of a batch in one C loop.

The compiled twin of ``callserver.media.rtpio.PythonRtpSockets``, with the same API and
behaviour (``callserver.media.rtpio`` describes both). Registered sockets are watched by one
epoll instance, whose descriptor the event loop watches; ``receive`` reads the ready sockets
with one ``recvmmsg`` each (``MSG_DONTWAIT``) and ``send`` makes one ``sendto`` a datagram,
neither going back to the interpreter between datagrams. A destination that is not a numeric
address of the socket's family is handed to the socket's own ``sendto``, as the fallback does.
Nothing here raises because of one socket or peer: its errno comes back beside the others.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_FromString
from libc.errno cimport EAGAIN, EBADF, EINTR, EINVAL, errno
from libc.stdint cimport uint16_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memset, strchr, strlen
from posix.unistd cimport close

cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int socklen_t
    ctypedef unsigned short sa_family_t
    struct sockaddr:
        sa_family_t sa_family
    struct sockaddr_storage:
        sa_family_t ss_family
    struct iovec:
        void *iov_base
        size_t iov_len
    struct msghdr:
        void *msg_name
        socklen_t msg_namelen
        iovec *msg_iov
        size_t msg_iovlen
        void *msg_control
        size_t msg_controllen
        int msg_flags
    struct mmsghdr:
        msghdr msg_hdr
        unsigned int msg_len
    int recvmmsg(int, mmsghdr *, unsigned int, int, void *)
    ssize_t sendto(int, const void *, size_t, int, const sockaddr *, socklen_t)
    int getsockname(int, sockaddr *, socklen_t *)
    int MSG_DONTWAIT
    int AF_INET
    int AF_INET6

cdef extern from "<netinet/in.h>" nogil:
    struct in_addr:
        uint32_t s_addr
    struct in6_addr:
        unsigned char s6_addr[16]
    struct sockaddr_in:
        sa_family_t sin_family
        uint16_t sin_port
        in_addr sin_addr
    struct sockaddr_in6:
        sa_family_t sin6_family
        uint16_t sin6_port
        uint32_t sin6_flowinfo
        in6_addr sin6_addr
        uint32_t sin6_scope_id
    uint16_t htons(uint16_t)
    uint16_t ntohs(uint16_t)
    uint32_t htonl(uint32_t)
    uint32_t ntohl(uint32_t)

cdef extern from "<netdb.h>" nogil:
    int getnameinfo(const sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t, int)
    int NI_NUMERICHOST

cdef extern from "<arpa/inet.h>" nogil:
    int inet_pton(int, const char *, void *)
    const char *inet_ntop(int, const void *, char *, socklen_t)

cdef extern from "<sys/epoll.h>" nogil:
    ctypedef union epoll_data_t:
        void *ptr
        int fd
        uint64_t u64
    struct epoll_event:
        uint32_t events
        epoll_data_t data
    int epoll_create1(int)
    int epoll_ctl(int, int, int, epoll_event *)
    int epoll_wait(int, epoll_event *, int, int)
    int EPOLL_CLOEXEC
    int EPOLL_CTL_ADD
    int EPOLL_CTL_DEL
    int EPOLLIN

cdef enum:
    _EVENTS = 1024  # the most ready sockets one receive takes from epoll
    _VLEN = 8  # the most datagrams one receive reads from one socket
    _BYTES = 2048  # a longer datagram is returned cut to this length, as recvfrom(2048) does

RECEIVE_LIMIT = _EVENTS
DATAGRAMS_PER_SOCKET = _VLEN
DATAGRAM_BYTES = _BYTES


cdef class _Registration:
    """One registered socket: its key, descriptor and family, and the last source address
    read from it, kept as one Python tuple so that a peer's packets share one object."""

    cdef object key
    cdef object sock
    cdef int fd
    cdef int family
    cdef sockaddr_storage source
    cdef socklen_t source_len
    cdef object address
    cdef object destination  # the last destination sent to, and its sockaddr
    cdef sockaddr_storage destination_name
    cdef socklen_t destination_len


cdef class RtpSockets:
    """Datagram sockets read and written in batches; see the module docstring."""

    cdef int _epoll
    cdef dict _by_key  # key -> _Registration (keeps what epoll points at alive)
    cdef epoll_event _events[_EVENTS]
    cdef mmsghdr _msgs[_VLEN]
    cdef iovec _iov[_VLEN]
    cdef sockaddr_storage _names[_VLEN]
    cdef char _buffers[_VLEN][_BYTES]

    def __cinit__(self):
        self._epoll = epoll_create1(EPOLL_CLOEXEC)
        if self._epoll < 0:
            raise OSError(errno, "epoll_create1 failed")
        self._by_key = {}
        cdef int i
        for i in range(_VLEN):
            self._iov[i].iov_base = self._buffers[i]
            self._iov[i].iov_len = _BYTES
            memset(&self._msgs[i], 0, sizeof(mmsghdr))
            self._msgs[i].msg_hdr.msg_iov = &self._iov[i]
            self._msgs[i].msg_hdr.msg_iovlen = 1
            self._msgs[i].msg_hdr.msg_name = &self._names[i]

    def __dealloc__(self):
        if self._epoll >= 0:
            close(self._epoll)

    def __len__(self):
        return len(self._by_key)

    def fileno(self):
        """The epoll descriptor: readable while a registered socket has a datagram."""
        if self._epoll < 0:
            raise ValueError("the RTP socket set is closed")
        return self._epoll

    def close(self):
        """Stop watching every socket (the sockets stay open)."""
        if self._epoll >= 0:
            close(self._epoll)
            self._epoll = -1
        self._by_key.clear()

    def register(self, sock, key):
        """Watch ``sock``; its datagrams come back with ``key``, and ``key`` sends from it."""
        if self._epoll < 0:
            raise ValueError("the RTP socket set is closed")
        if key in self._by_key:
            raise ValueError(f"key {key!r} is already registered")
        cdef _Registration registration = _Registration()
        registration.key = key
        registration.sock = sock
        registration.fd = sock.fileno()
        cdef sockaddr_storage bound
        cdef socklen_t length = sizeof(bound)
        if getsockname(registration.fd, <sockaddr *>&bound, &length) < 0:
            raise OSError(errno, f"cannot read the address of descriptor {registration.fd}")
        registration.family = bound.ss_family
        cdef epoll_event event
        memset(&event, 0, sizeof(event))
        event.events = EPOLLIN
        event.data.ptr = <void *>registration
        if epoll_ctl(self._epoll, EPOLL_CTL_ADD, registration.fd, &event) < 0:
            raise OSError(errno, f"cannot watch descriptor {registration.fd}")
        self._by_key[key] = registration

    def unregister(self, key):
        """Stop watching the socket of ``key`` (``KeyError`` if none)."""
        cdef _Registration registration = self._by_key.pop(key)
        cdef epoll_event event
        if self._epoll >= 0 and registration.sock.fileno() >= 0:
            epoll_ctl(self._epoll, EPOLL_CTL_DEL, registration.fd, &event)

    def receive(self, int limit=_EVENTS):
        """What waits on the ready sockets, and the read errors; see the module docstring."""
        cdef list datagrams = []
        cdef list errors = []
        if self._epoll < 0:
            return datagrams, errors
        cdef int ready = epoll_wait(self._epoll, self._events, min(max(limit, 1), _EVENTS), 0)
        cdef int i
        if ready < 0:
            if errno == EINTR:
                return datagrams, errors
            raise OSError(errno, "epoll_wait failed")
        # Hold each ready registration before any Python object is made: a collection that
        # runs a finalizer could unregister one while the others are read.
        cdef list registrations = [<_Registration>self._events[i].data.ptr for i in range(ready)]
        for registration in registrations:
            self._read(registration, datagrams, errors)
        return datagrams, errors

    cdef int _read(self, _Registration registration, list datagrams, list errors) except -1:
        cdef int i, count, size
        for i in range(_VLEN):
            self._msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage)
        count = recvmmsg(registration.fd, self._msgs, _VLEN, MSG_DONTWAIT, NULL)
        if count < 0:
            if errno != EAGAIN and errno != EINTR:
                errors.append((registration.key, errno))
            return 0
        for i in range(count):
            source = _source(registration, &self._names[i], self._msgs[i].msg_hdr.msg_namelen)
            if source is not None:  # always, for a UDP socket of either family
                size = min(<int>self._msgs[i].msg_len, <int>_BYTES)
                data = PyBytes_FromStringAndSize(self._buffers[i], size)
                datagrams.append((registration.key, data, source))
        return 0

    def send(self, list batch):
        """Send each ``(key, data, address)``; ``(index, errno)`` of those that failed."""
        cdef list failed = []
        cdef Py_ssize_t i, n = PyList_GET_SIZE(batch)
        cdef int code
        for i in range(n):
            code = self._send_one(<object>PyList_GET_ITEM(batch, i))
            if code:
                failed.append((i, code))
        return failed

    cdef int _send_one(self, object item) except -1:
        """sendto for one (key, data, address): 0 or the errno."""
        if not isinstance(item, tuple) or PyTuple_GET_SIZE(item) != 3:
            return EINVAL
        cdef PyObject *found = PyDict_GetItem(self._by_key, <object>PyTuple_GET_ITEM(item, 0))
        if found == NULL:
            return EBADF
        cdef _Registration registration = <_Registration>found
        data = <object>PyTuple_GET_ITEM(item, 1)
        address = <object>PyTuple_GET_ITEM(item, 2)
        if not isinstance(data, bytes):
            return _send_slowly(registration.sock, data, address)
        if address is not registration.destination:  # a stream sends to one tuple, tick on tick
            registration.destination = None
            if not _numeric(address, registration.family, &registration.destination_name,
                            &registration.destination_len):
                return _send_slowly(registration.sock, data, address)
            registration.destination = address
        cdef int fd = registration.sock.fileno()  # -1 once closed: its number may be reused
        if fd < 0:
            return EBADF
        if sendto(fd, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), MSG_DONTWAIT,
                  <sockaddr *>&registration.destination_name, registration.destination_len) < 0:
            return errno if errno else EINVAL
        return 0


cdef int _send_slowly(object sock, object data, object address) except -1:
    """The socket's own sendto (names, odd tuples): what the fallback does for every datagram."""
    try:
        sock.sendto(data, address)
    except OSError as exc:
        return exc.errno if exc.errno is not None and exc.errno > 0 else EINVAL
    except (TypeError, ValueError, OverflowError):
        return EINVAL
    return 0


cdef object _source(_Registration registration, sockaddr_storage *name, socklen_t length):
    """The source address as recvfrom gives it, reusing the last one when unchanged."""
    if length == registration.source_len and memcmp(name, &registration.source, length) == 0:
        return registration.address
    cdef char text[1025]  # NI_MAXHOST
    cdef sockaddr_in *v4
    cdef sockaddr_in6 *v6
    if name.ss_family == AF_INET:
        v4 = <sockaddr_in *>name
        inet_ntop(AF_INET, &v4.sin_addr, text, sizeof(text))
        address = (PyUnicode_FromString(text), ntohs(v4.sin_port))
    elif name.ss_family == AF_INET6:
        v6 = <sockaddr_in6 *>name
        # as recvfrom names it: numeric, with the scope of a link-local address (fe80::1%eth0)
        if getnameinfo(<sockaddr *>name, length, text, sizeof(text), NULL, 0, NI_NUMERICHOST):
            return None
        address = (
            PyUnicode_FromString(text),
            ntohs(v6.sin6_port),
            ntohl(v6.sin6_flowinfo),
            v6.sin6_scope_id,
        )
    else:
        return None
    memcpy(&registration.source, name, length)
    registration.source_len = length
    registration.address = address
    return address


cdef bint _numeric(
    object address, int family, sockaddr_storage *name, socklen_t *length
) except -1:
    """Whether ``address`` is a numeric (host, port) of ``family`` (+ flowinfo, scope_id for
    IPv6), written to ``name``; anything else goes to the socket's own sendto."""
    if not isinstance(address, tuple):
        return False
    cdef Py_ssize_t size = PyTuple_GET_SIZE(address)
    if size < 2:
        return False
    host = <object>PyTuple_GET_ITEM(address, 0)
    port = <object>PyTuple_GET_ITEM(address, 1)
    if type(host) is not str or type(port) is not int or not 0 <= port <= 0xFFFF:
        return False
    cdef Py_ssize_t host_len
    cdef const char *text
    try:
        text = PyUnicode_AsUTF8AndSize(host, &host_len)
    except UnicodeError:  # a lone surrogate: let the socket refuse it
        return False
    if <size_t>host_len != strlen(text):
        return False  # an embedded NUL: let the socket refuse it
    cdef sockaddr_in *v4 = <sockaddr_in *>name
    cdef sockaddr_in6 *v6 = <sockaddr_in6 *>name
    memset(name, 0, sizeof(sockaddr_storage))
    if family == AF_INET and size == 2 and inet_pton(AF_INET, text, &v4.sin_addr) == 1:
        v4.sin_family = AF_INET
        v4.sin_port = htons(<uint16_t>port)
        length[0] = sizeof(sockaddr_in)
        return True
    if family != AF_INET6 or size > 4 or size == 3 or strchr(text, c'%') != NULL:
        return False  # a scope given by name (fe80::1%eth0) is the socket's to resolve
    if inet_pton(AF_INET6, text, &v6.sin6_addr) != 1:
        return False
    v6.sin6_family = AF_INET6
    v6.sin6_port = htons(<uint16_t>port)
    if size == 4:
        flowinfo = <object>PyTuple_GET_ITEM(address, 2)
        scope_id = <object>PyTuple_GET_ITEM(address, 3)
        if type(flowinfo) is not int or type(scope_id) is not int:
            return False
        if not 0 <= flowinfo <= 0xFFFFF or not 0 <= scope_id <= 0xFFFFFFFF:
            return False
        v6.sin6_flowinfo = htonl(<uint32_t>flowinfo)
        v6.sin6_scope_id = <uint32_t>scope_id
    length[0] = sizeof(sockaddr_in6)
    return True
