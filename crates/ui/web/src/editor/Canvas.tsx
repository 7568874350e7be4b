// The flow canvas: nodes and edges derived from the document; drag, pan, zoom, fit, minimap,
// connect by dragging, delete, and a new block when a connection is dropped on empty canvas.
import {
  Background,
  Controls,
  MarkerType,
  MiniMap,
  ReactFlow,
  useReactFlow,
  type Connection,
  type Edge,
  type FinalConnectionState,
  type Node,
  type NodeChange,
  type EdgeChange,
} from '@xyflow/react';
import { useCallback, useMemo, useState } from 'react';
import { placeAll } from './diagnostics';
import { BLOCK_KINDS, blockPorts, newBlock, referencesTo, removeBlock, setIn, splitPath, type Position } from './flow';
import { placeBlocks, START_ID } from './layout';
import { nodeTypes, type BlockNode, type StartNode } from './nodes';
import { useEditor } from './store';
import { Icon } from '../ui/Icon';

/** Keys that delete the selection (a constant: React Flow re-subscribes when the array changes). */
const DELETE_KEYS = ['Delete', 'Backspace'];
const FIT_VIEW_OPTIONS = { padding: 0.15 };
const PRO_OPTIONS = { hideAttribution: true };

interface DropMenu {
  screen: Position;
  flow: Position;
  source: string;
  handle: string;
}

export function Canvas(props: { onConfirmDelete(blockId: string, referencedBy: number): void }) {
  const doc = useEditor((s) => s.doc);
  const diagnostics = useEditor((s) => s.diagnostics);
  const selection = useEditor((s) => s.selection);
  const { select, edit } = useEditor.getState();
  const flow = useReactFlow();
  const [dragging, setDragging] = useState<Record<string, Position>>({});
  const [measured, setMeasured] = useState<Record<string, { width: number; height: number }>>({});
  const [selectedEdges, setSelectedEdges] = useState<Set<string>>(new Set());
  const [dropMenu, setDropMenu] = useState<DropMenu | null>(null);

  const placed = useMemo(() => placeAll(doc, diagnostics), [doc, diagnostics]);
  const positions = useMemo(() => (doc ? placeBlocks(doc) : new Map<string, Position>()), [doc]);

  const nodes: Node[] = useMemo(() => {
    if (!doc) return [];
    const start: StartNode = {
      id: START_ID,
      type: 'start',
      position: positions.get(START_ID) ?? { x: 0, y: 0 },
      data: { triggers: doc.triggers ?? [], problems: placed.start.length },
      selected: selection?.kind === 'start',
      draggable: false,
      deletable: false,
      measured: measured[START_ID],
    };
    const blocks: BlockNode[] = doc.blocks.map((block) => ({
      id: block.id,
      type: 'block',
      position: dragging[block.id] ?? positions.get(block.id) ?? { x: 0, y: 0 },
      data: { block, problems: placed.blocks.get(block.id), isStart: block.id === doc.start },
      selected: selection?.kind === 'block' && selection.id === block.id,
      measured: measured[block.id],
    }));
    return [start, ...blocks];
  }, [doc, positions, placed, selection, dragging, measured]);

  const edges: Edge[] = useMemo(() => {
    if (!doc) return [];
    const ids = new Set(doc.blocks.map((b) => b.id));
    const out: Edge[] = [];
    if (ids.has(doc.start))
      out.push({ id: `${START_ID}/start`, source: START_ID, sourceHandle: 'start', target: doc.start, targetHandle: 'in', deletable: false, markerEnd: { type: MarkerType.ArrowClosed } });
    for (const block of doc.blocks) {
      const problems = placed.blocks.get(block.id);
      for (const port of blockPorts(block)) {
        if (!port.target || !ids.has(port.target)) continue;
        const id = `${block.id}/${port.path}`;
        const red = problems?.ports.has(port.path) ?? false;
        out.push({
          id,
          source: block.id,
          sourceHandle: port.path,
          target: port.target,
          targetHandle: 'in',
          label: port.label,
          selected: selectedEdges.has(id),
          className: red ? 'edge-error' : undefined,
          markerEnd: { type: MarkerType.ArrowClosed },
        });
      }
    }
    return out;
  }, [doc, placed, selectedEdges]);

  const onNodesChange = useCallback((changes: NodeChange[]) => {
    for (const change of changes) {
      if (change.type === 'dimensions' && change.dimensions) {
        const dims = change.dimensions;
        setMeasured((m) => (m[change.id]?.width === dims.width && m[change.id]?.height === dims.height ? m : { ...m, [change.id]: dims }));
      } else if (change.type === 'position' && change.dragging && change.position) {
        const pos = change.position;
        setDragging((d) => ({ ...d, [change.id]: pos }));
      }
    }
  }, []);

  const onNodeDragStop = useCallback(
    (_: unknown, __: Node, moved: Node[]) => {
      edit((current) => {
        let next = current;
        for (const node of moved) {
          const index = next.blocks.findIndex((b) => b.id === node.id);
          if (index >= 0) next = setIn(next, ['blocks', index, 'position'], { x: Math.round(node.position.x), y: Math.round(node.position.y) });
        }
        return next;
      });
      setDragging({});
    },
    [edit],
  );

  const onEdgesChange = useCallback((changes: EdgeChange[]) => {
    for (const change of changes) {
      if (change.type === 'select')
        setSelectedEdges((s) => {
          const next = new Set(s);
          if (change.selected) next.add(change.id);
          else next.delete(change.id);
          return next;
        });
    }
  }, []);

  const connect = useCallback(
    (source: string, handle: string, target: string) => {
      edit((current) => {
        if (source === START_ID) return { ...current, start: target };
        const index = current.blocks.findIndex((b) => b.id === source);
        if (index < 0) return current;
        return setIn(current, ['blocks', index, ...splitPath(handle)], target);
      });
    },
    [edit],
  );

  const onConnect = useCallback(
    (c: Connection) => {
      if (c.source && c.sourceHandle && c.target) connect(c.source, c.sourceHandle, c.target);
    },
    [connect],
  );

  const onConnectEnd = useCallback(
    (event: MouseEvent | TouchEvent, state: FinalConnectionState) => {
      if (state.isValid || !state.fromNode || !state.fromHandle?.id) return;
      const target = event.target as Element | null;
      if (!target?.classList.contains('react-flow__pane')) return;
      const point = 'changedTouches' in event ? event.changedTouches[0] : event;
      const screen = { x: point.clientX, y: point.clientY };
      setDropMenu({ screen, flow: flow.screenToFlowPosition(screen), source: state.fromNode.id, handle: state.fromHandle.id });
    },
    [flow],
  );

  const onBeforeDelete = useCallback(
    async ({ nodes: goneNodes, edges: goneEdges }: { nodes: Node[]; edges: Edge[] }) => {
      // React Flow adds the edges of deleted nodes; those are the blocks' business (confirm first).
      const goneIds = new Set(goneNodes.map((n) => n.id));
      for (const e of goneEdges) {
        if (e.source === START_ID || !e.sourceHandle || goneIds.has(e.source) || goneIds.has(e.target)) continue;
        const source = e.source;
        const handle = e.sourceHandle;
        edit((current) => {
          const index = current.blocks.findIndex((b) => b.id === source);
          return index < 0 ? current : setIn(current, ['blocks', index, ...splitPath(handle)], undefined);
        });
      }
      setSelectedEdges(new Set());
      for (const n of goneNodes) {
        if (n.id === START_ID) continue;
        const current = useEditor.getState().doc;
        if (!current) continue;
        const refs = referencesTo(current, n.id).filter((r) => current.blocks[r.index].id !== n.id);
        if (refs.length > 0 || current.start === n.id) props.onConfirmDelete(n.id, refs.length + (current.start === n.id ? 1 : 0));
        else {
          edit((d) => removeBlock(d, n.id));
          select(null);
        }
      }
      return false;
    },
    [edit, select, props],
  );

  return (
    <div className="canvas" data-testid="canvas">
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onNodeDragStop={onNodeDragStop}
        onConnect={onConnect}
        onConnectEnd={onConnectEnd}
        onBeforeDelete={onBeforeDelete}
        onNodeClick={(_, node) => select(node.id === START_ID ? { kind: 'start' } : { kind: 'block', id: node.id })}
        onPaneClick={() => {
          select(null);
          setDropMenu(null);
        }}
        fitView
        fitViewOptions={FIT_VIEW_OPTIONS}
        minZoom={0.2}
        maxZoom={2}
        deleteKeyCode={DELETE_KEYS}
        proOptions={PRO_OPTIONS}
      >
        <Background gap={20} />
        <Controls />
        <MiniMap pannable zoomable ariaLabel="Minimap" style={{ width: 150, height: 100 }} />
      </ReactFlow>
      {dropMenu && (
        <div className="menu drop-menu" role="menu" aria-label="Add a connected block" style={{ left: dropMenu.screen.x, top: dropMenu.screen.y }}>
          {BLOCK_KINDS.map((k) => (
            <button
              key={k.type}
              type="button"
              role="menuitem"
              onClick={() => {
                const current = useEditor.getState().doc;
                if (!current) return;
                const block = newBlock(current, k.type, dropMenu.flow);
                // One edit (one undo step): the block and the connection to it.
                edit((d) => {
                  const added = { ...d, blocks: [...d.blocks, block] };
                  if (dropMenu.source === START_ID) return { ...added, start: block.id };
                  const index = added.blocks.findIndex((b) => b.id === dropMenu.source);
                  return index < 0 ? added : setIn(added, ['blocks', index, ...splitPath(dropMenu.handle)], block.id);
                });
                select({ kind: 'block', id: block.id });
                setDropMenu(null);
              }}
            >
              <Icon name={k.icon} /> {k.label}
            </button>
          ))}
        </div>
      )}
    </div>
  );
}
