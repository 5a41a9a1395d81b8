import type { CommandDef } from './types';

export const showLogCommand: CommandDef = {
  id: 'cagedAgent.showLog',
  run: (cx) => {
    cx.log.show(true);
  },
};
