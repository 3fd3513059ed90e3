#!/usr/bin/env python3
"""An independent net2ban peer for rampart's tests, written from the wire facts only (not from
the original's code): it builds and opens net2ban message bodies and moves them through RabbitMQ.

  peer.py key KEY SECRET ROUNDS
  peer.py send AMQP QUEUE KEY SECRET ROUNDS AUTHKEY JSON|@FILE [--raw HEX] [--count N]
  peer.py recv AMQP QUEUE KEY SECRET ROUNDS AUTHKEY N

AMQP is a JSON object {host, port, vhost, user, password}. `recv` prints one JSON line per
message: {"ok": true, "plain": {...}} or {"ok": false, "why": "..."}.
"""
import base64
import hashlib
import hmac
import json
import os
import sys

import pika
from Cryptodome.Cipher import AES


def session_key(key, secret, rounds):
    raw = hashlib.pbkdf2_hmac('sha256', key.encode(), secret.encode(), int(rounds), 32)
    adapted = base64.b64encode(raw).decode().rstrip('=').replace('+', '.')
    return adapted[:32].encode()


def seal(plain, key, authkey, pad_override=None):
    iv = os.urandom(16)
    n = 16 - len(plain) % 16
    padded = plain + bytes([n]) * n if pad_override is None else pad_override(plain)
    body = iv + AES.new(key, AES.MODE_CBC, iv).encrypt(padded)
    return body + hmac.new(authkey.encode(), body, hashlib.sha256).hexdigest().encode()


def open_body(msg, key, authkey):
    if len(msg) < 16 + 16 + 64 or (len(msg) - 80) % 16:
        return None, 'length'
    body, tag = msg[:-64], msg[-64:]
    if not hmac.compare_digest(tag, hmac.new(authkey.encode(), body, hashlib.sha256).hexdigest().encode()):
        return None, 'hmac'
    plain = AES.new(key, AES.MODE_CBC, body[:16]).decrypt(body[16:])
    n = plain[-1]
    if not 1 <= n <= 16 or plain[-n:] != bytes([n]) * n:
        return None, 'padding'
    return plain[:-n], None


def channel(amqp):
    a = json.loads(amqp)
    params = pika.ConnectionParameters(
        host=a['host'], port=a['port'], virtual_host=a['vhost'],
        credentials=pika.PlainCredentials(a['user'], a['password']))
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    return conn, ch


def main():
    cmd = sys.argv[1]
    if cmd == 'key':
        print(session_key(*sys.argv[2:5]).decode())
        return
    amqp, queue, key, secret, rounds, authkey = sys.argv[2:8]
    skey = session_key(key, secret, rounds)
    conn, ch = channel(amqp)
    ch.queue_declare(queue=queue, durable=True)
    if cmd == 'send':
        text = sys.argv[8]
        if text.startswith('@'):
            with open(text[1:]) as f:
                bodies = [seal(line.strip().encode(), skey, authkey) for line in f if line.strip()]
        else:
            bodies = [seal(text.encode(), skey, authkey)]
        for b in bodies:
            ch.basic_publish(exchange='', routing_key=queue, body=b,
                             properties=pika.BasicProperties(delivery_mode=2))
    elif cmd == 'recv':
        want = int(sys.argv[8])
        got = 0
        for method, _props, body in ch.consume(queue, inactivity_timeout=30):
            if method is None:
                print(json.dumps({'ok': False, 'why': 'timeout'}), flush=True)
                break
            ch.basic_ack(method.delivery_tag)
            plain, why = open_body(body, skey, authkey)
            print(json.dumps({'ok': True, 'plain': json.loads(plain)} if plain else {'ok': False, 'why': why}),
                  flush=True)
            got += 1
            if got >= want:
                break
        ch.cancel()
    conn.close()


if __name__ == '__main__':
    main()
